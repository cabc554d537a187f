"""Browser tests: Debian's Chromium (never a downloaded browser) driven by Playwright, on 127.0.0.1 only."""

from __future__ import annotations

import math
import os
import shutil
import struct
import wave
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# What calls.md measured as needed: a fake mic fed from a file, permission granted, loopback ICE;
# the rest keeps Chromium off the (closed) network.
CHROMIUM_FLAGS = [
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-quic", "--no-sandbox",
]


def write_tone(path: Path, hz: float, seconds: float = 4.0, rate: int = 48000, amplitude: float = 0.5) -> Path:
    frames = bytearray()
    for n in range(int(seconds * rate)):
        frames += struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * hz * n / rate)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


@pytest.fixture(scope="module")  # not session: its event loop would stay running for later tests
def playwright_sync():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing = f"Chromium not installed at {CHROMIUM} (.ci/run installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(missing)  # CI must have installed it: never pass by skipping
        pytest.skip(missing)
    from playwright import sync_api  # requirements-dev.txt

    with sync_api.sync_playwright() as pw:
        yield pw


@pytest.fixture
def launch_browser(playwright_sync, tmp_path):
    browsers = []

    def launch(tone_hz: float):
        wav = write_tone(tmp_path / f"tone{int(tone_hz)}.wav", tone_hz)
        browser = playwright_sync.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"])
        browsers.append(browser)
        return browser

    yield launch
    for browser in browsers:
        browser.close()
