#!/usr/bin/env bash
# Browser tests drive Debian's Chromium; install it when it is missing.
set -euo pipefail
# The Hulpplein print test reads its PDF with pdftotext (poppler-utils).
if [ ! -x /usr/bin/chromium ] || ! command -v pdftotext >/dev/null; then
  echo "Installing Debian's chromium and poppler-utils for the browser tests ..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null
fi
