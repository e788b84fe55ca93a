#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine with Python >= 3.10:
# Fashion-MNIST's IDX files (Debian's dataset-fashion-mnist, the offline default
# dataset) and this package with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "setup.sh: no apt-get; put Fashion-MNIST's IDX files in /usr/share/datasets/fashion-mnist" \
         "or pass --config.data.dir=DIR" >&2
  fi
fi
python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet -e '.[test]'
