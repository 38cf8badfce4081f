#!/usr/bin/env bash
# What the tests need from the system besides the venv: Debian's chromium (the web page and EventSource tests drive
# it through Playwright, which cannot download a browser offline) and Debian's ffmpeg (the pipeline is tested with a
# distro's ffmpeg too). Installed when run as root with apt-get; otherwise one line says what to install.
set -u
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/ffmpeg ] || need+=(ffmpeg)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "make test: installing Debian's ${need[*]} for the tests" >&2
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null && exit 0
  echo "make test: could not install ${need[*]}" >&2
  exit 1
fi
echo "make test: the tests that need Debian's ${need[*]} will be skipped: install with 'sudo apt-get install ${need[*]}'" >&2
