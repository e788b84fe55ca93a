"""The benchmarks' own arithmetic: matmul FLOPs of a jaxpr and the op classes of a profile."""

import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'benchmarks'))
import ceiling  # pylint: disable=g-import-not-at-top,wrong-import-position
import profile_step  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_matmul_flops_counts_scan_bodies_times_their_length():
  w = jnp.ones((5, 6))

  def f(x):  # (4, 5) @ (5, 6) once outside and 3 times in a scan: 2 * 4 * 5 * 6 each
    y = x @ w
    def body(c, _):
      return c, (c @ w).sum()
    _, s = jax.lax.scan(body, x, None, length=3)
    return y, s

  assert ceiling.matmul_flops(f, jnp.ones((4, 5))) == 4 * 240.0


def test_matmul_flops_counts_the_backward_pass():
  # y = x @ w; grad w.r.t. w is x^T dy: a second (5, 4) x (4, 6) contraction.
  f = jax.grad(lambda w, x: (x @ w).sum())
  assert ceiling.matmul_flops(f, jnp.ones((5, 6)), jnp.ones((4, 5))) == 2 * 240.0


HLO = """HloModule jit_f, entry_computation_layout={(f32[4,5]{1,0})->f32[4,6]{1,0}}

%fused_dot (p0: f32[4,5], p1: f32[5,6]) -> f32[4,6] {
  %p0 = f32[4,5]{1,0} parameter(0)
  %p1 = f32[5,6]{1,0} parameter(1)
  ROOT %dot.3 = f32[4,6]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%fused_stack (p0: f32[3,4], p1: f32[4], p2: s32[]) -> f32[3,4] {
  %p0 = f32[3,4]{1,0} parameter(0)
  %p1 = f32[4]{0} parameter(1)
  %bitcast.1 = f32[1,4]{1,0} bitcast(%p1)
  %p2 = s32[] parameter(2)
  %c = s32[] constant(0)
  ROOT %dynamic-update-slice.1 = f32[3,4]{1,0} dynamic-update-slice(%p0, %bitcast.1, %p2, %c)
}

%fused_add (p0: f32[4,6]) -> f32[4,6] {
  %p0 = f32[4,6]{1,0} parameter(0)
  ROOT %add.1 = f32[4,6]{1,0} add(%p0, %p0)
}

%body (arg: (s32[], u32[2])) -> (s32[], u32[2]) {
  %arg = (s32[], u32[2]{0}) parameter(0)
  %gte.1 = u32[2]{0} get-tuple-element(%arg), index=1
  %copy.1 = u32[2]{0} copy(%gte.1)
  %gte.0 = s32[] get-tuple-element(%arg), index=0
  ROOT %tuple.1 = (s32[], u32[2]{0}) tuple(%gte.0, %copy.1)
}

%cond (arg: (s32[], u32[2])) -> pred[] {
  %arg = (s32[], u32[2]{0}) parameter(0)
  %gte.2 = s32[] get-tuple-element(%arg), index=0
  %five = s32[] constant(5)
  ROOT %lt = pred[] compare(%gte.2, %five), direction=LT
}

ENTRY %main.1 (x: f32[4,5]) -> f32[4,6] {
  %x = f32[4,5]{1,0} parameter(0)
  %w = f32[5,6]{1,0} constant({...})
  %ynn_fusion.2 = f32[4,6]{1,0} fusion(%x, %w), kind=kCustom, calls=%fused_dot
  %zero = s32[] constant(0)
  %i = s32[] copy(%zero)
  %t = (s32[], u32[2]{0}) tuple(%i, %k)
  %while.7 = (s32[], u32[2]{0}) while(%t), condition=%cond, body=%body, metadata={op_name="jit(f)/jit(_threefry_split)/while"}
  %stack_fusion.4 = f32[3,4]{1,0} fusion(%s, %v, %i), kind=kLoop, calls=%fused_stack
  %copy.9 = f32[4,6]{0,1} copy(%ynn_fusion.2)
  ROOT %add_fusion.5 = f32[4,6]{1,0} fusion(%copy.9), kind=kLoop, calls=%fused_add
}
"""


def test_module_classifies_instructions_by_what_they_contain():
  module = profile_step.Module(HLO)
  assert module.kind('ynn_fusion.2') == 'matmul'       # a fusion around a dot
  assert module.kind('while.7') is None                 # a container, not an op
  assert module.kind('copy.1') == 'random'              # inside the threefry loop, no metadata
  assert module.kind('lt') == 'random'                  # the loop's condition too
  assert module.kind('i') == 'random'                   # the copy that sets up its carry
  assert module.kind('stack_fusion.4') == 'scan residuals'
  assert module.kind('copy.9') == 'copy'
  assert module.kind('add_fusion.5') == 'elementwise'
  assert module.kind('ThunkExecutor::Execute') is None  # a runtime event


def test_by_kind_divides_counts_and_times_by_the_steps():
  events = {'ynn_fusion.2': (4, 8000.0), 'copy.1': (20, 2000.0), 'add_fusion.5': (4, 400.0),
            'while.7': (4, 9000.0), 'end: copy.1': (20, 1.0)}
  out = profile_step.by_kind(profile_step.op_rows(events, HLO, num_steps=4))
  assert out['matmul'] == {'ops': 1.0, 'us': 2.0}
  assert out['random'] == {'ops': 5.0, 'us': 0.5}
  assert out['elementwise'] == {'ops': 1.0, 'us': 0.1}
  assert out['copy'] == {'ops': 0.0, 'us': 0.0}


def test_profile_counts_every_executed_matmul():
  # Three dependent 64 x 64 matmuls in a fori_loop: 3 matmul ops a call, however
  # XLA lays the loop out; one jax.random.split adds the threefry ops.
  w = jnp.full((64, 64), 0.01)

  @jax.jit
  def f(x, key):
    x = jax.lax.fori_loop(0, 3, lambda i, x: jnp.tanh(x @ w), x)
    return x, jax.random.split(key, 3)

  args = (jnp.ones((64, 64)), jax.random.PRNGKey(0))
  compiled = f.lower(*args).compile()
  jax.block_until_ready(compiled(*args))

  def run():
    for _ in range(2):
      jax.block_until_ready(compiled(*args))

  out = profile_step.by_kind(
      profile_step.op_rows(profile_step.profile_events(run), compiled.as_text(), num_steps=2))
  assert out['matmul']['ops'] == 3.0
  assert out['random']['ops'] > 0
