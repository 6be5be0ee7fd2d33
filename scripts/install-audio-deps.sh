#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages `voxlive local` and its tests need, if they are missing:
#   libportaudio2       PortAudio, which the sounddevice Python package loads
#   libasound2-plugins  the ALSA "pulse" plugin, PortAudio's way to a PulseAudio server
#   pulseaudio          the private sound server the tests start (null sinks, loopback)
#   pulseaudio-utils    paplay/parecord/pactl, with which the tests speak and listen
#   espeak-ng           speaks the test questions
set -euo pipefail
missing=()
ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so\.2' || missing+=(libportaudio2)
ls /usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so >/dev/null 2>&1 \
    || missing+=(libasound2-plugins)
command -v pulseaudio >/dev/null || missing+=(pulseaudio)
command -v paplay >/dev/null && command -v parecord >/dev/null && command -v pactl >/dev/null \
    || missing+=(pulseaudio-utils)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
