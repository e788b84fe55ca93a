"""plotting.mixture_strip: what lands in which panel, read back from the figure."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use('Agg')

from gan_jax import plotting  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_mixture_strip_puts_each_snapshot_in_its_row_and_column(tmp_path, monkeypatch):
  saved = {}
  real_save = plotting.save

  def capture(fig, path):
    saved['fig'], saved['path'] = fig, path
    fig.canvas.draw()
    saved['axes'] = [(ax.get_title(), ax.get_ylabel(), ax.axison,
                      [np.asarray(c.get_offsets()) for c in ax.collections])
                     for ax in fig.axes]
    real_save(fig, path)

  monkeypatch.setattr(plotting, 'save', capture)
  centers = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
  a0, a1, b0 = (np.full((5, 2), v) for v in (0.1, 0.2, 0.3))
  path = str(tmp_path / 'strip.png')
  plotting.mixture_strip({'unrolled': [(0, a0), (100, a1)], 'plain': [(50, b0)]},
                         centers, path)
  assert saved['path'] == path and (tmp_path / 'strip.png').stat().st_size > 0
  axes = saved['axes']
  assert len(axes) == 4  # 2 rows x 2 columns, row-major
  (t00, y00, on00, c00), (t01, _, on01, c01), (t10, y10, on10, c10), (_, _, on11, c11) = axes
  assert (t00, t01, t10) == ('step 0', 'step 100', 'step 50')
  assert (y00, y10) == ('unrolled', 'plain')
  assert on00 and on01 and on10 and not on11  # the missing snapshot's panel is hidden
  assert c11 == []
  for collections, samples in ((c00, a0), (c01, a1), (c10, b0)):
    np.testing.assert_array_equal(collections[0], samples)   # G's samples
    np.testing.assert_array_equal(collections[1], centers)   # the modes


def test_outside_share_counts_what_the_mode_window_hides():
  samples = np.array([[0.0, 0.0], [5.0, 0.0], [np.nan, 0.0], [1.0, -1.0]])
  # [5, 0] lies outside [-2, 2]^2 and nan is nowhere: 2 of 4.
  assert plotting.outside_share(samples, 2.0) == 0.5
  assert plotting.outside_share(samples[[0, 3]], 2.0) == 0.0


def test_more_than_ten_curves_get_distinct_colour_and_style_pairs():
  pairs = [plotting.line_style(i) for i in range(40)]
  assert len(set(pairs)) == 40
  assert plotting.line_style(0)[1] == '-' and plotting.line_style(10)[1] == '--'


def test_modes_vs_quality_gives_twelve_variants_distinct_colour_and_marker_pairs(
    tmp_path, monkeypatch):
  drawn = []
  real_save = plotting.save

  def capture(fig, path):
    # The errorbar's data point; its caps are lines with '|' / '_' markers.
    drawn.extend((line.get_color(), line.get_marker(), tuple(line.get_xydata()[0]))
                 for line in fig.axes[0].lines if line.get_marker() not in ('|', '_', 'None'))
    real_save(fig, path)

  monkeypatch.setattr(plotting, 'save', capture)
  points = {f'v{i}': (np.array([i % 8, i % 8]), np.array([0.5, 0.7])) for i in range(12)}
  plotting.modes_vs_quality(points, str(tmp_path / 'mq.png'), num_modes=8)
  assert len(drawn) == 12
  assert len({(c, m) for c, m, _ in drawn}) == 12
  assert drawn[0][1] == 'o' and drawn[10][1] == 's'
  assert drawn[3][2] == (60.0, 3.0)  # x: mean HQ %, y: mean modes
