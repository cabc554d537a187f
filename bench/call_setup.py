"""Calls: offer POST -> `connected` (browser <-> host on loopback), and CPU and memory per active call
on the session host.

Starts the local gateway (sim driver, ICE on 127.0.0.1 only) and Debian's Chromium through Playwright
(fake microphone playing a generated tone). Sim calls between pairs of sessions are placed and
answered over HTTP; each side's browser leg is attached from the call page.
- setup: one call, `--rounds` offers from the page (each after the previous leg closed); the page measures
  offer POST -> RTCPeerConnection.connectionState == "connected" (ICE + DTLS).
- load: `--calls` concurrent calls (two legs each, both on the host, bridged to each other); host
  CPU over a steady window and RSS, against the host with no legs.
Prints medians; never part of the test run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from common import LocalGateway, tree, wait_for  # noqa: E402 - bench/ is on sys.path

from bench.session_host import cpu_seconds, free_port, rss_mib  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, write_tone  # noqa: E402

ADMIN = {"admintoken": "qwert"}



def host_pid(launcher_pid: int) -> int:
    for pid in tree(launcher_pid):
        try:
            if b"session_host" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            pass
    raise RuntimeError("no session host process found")


def main() -> int:
    import httpx
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2, help="concurrent calls (2 legs each) for CPU/memory")
    parser.add_argument("--window", type=float, default=10.0, help="CPU sampling window, seconds")
    args = parser.parse_args()

    api_port, aws_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(STAGE="local", WAGO_ACCESS_LOG="0", WHATSAPP_DRIVER="sim", ICE_HOST_ADDRESSES="127.0.0.1",
               HOST_HEARTBEAT_SECONDS="1", CALL_INACTIVITY_SECONDS="60", CALL_RING_SECONDS="600")
    gateway = LocalGateway(api_port, aws_port, env).__enter__()
    launcher = gateway.process
    base = f"http://127.0.0.1:{api_port}"
    api = httpx.Client(base_url=base, timeout=30)
    try:
        host = host_pid(launcher.pid)

        def call(method, path, token, body=None, admin=False):
            response = api.request(method, path, headers=ADMIN if admin else {"token": token}, json=body)
            data = response.json()
            if not data.get("success"):
                raise RuntimeError(f"{method} {path}: {data}")
            return data["data"]

        def login(token: str, phone: str) -> None:
            api.post("/session/init", headers=ADMIN, json={"Name": token, "Token": token, "Os": "bench"})
            call("POST", "/session/connect", token, {})
            call("POST", "/sim/scan", token, {"Token": token, "Phone": phone}, admin=True)

        def new_call(i: int) -> tuple[str, str, str]:
            a, b = f"a{i}", f"b{i}"
            login(a, f"1555009{i:04d}")
            login(b, f"1555008{i:04d}")
            call_id = call("POST", "/call/make", a, {"Phone": f"1555008{i:04d}"})["CallID"]
            wait_for(lambda: any(c["CallID"] == call_id for c in call("GET", "/call/status", b)["calls"]), 20, "ring")
            call("POST", "/call/accept", b, {"CallID": call_id})
            return a, b, call_id

        wav = write_tone(Path(tempfile.mkdtemp()) / "tone.wav", 1000.0)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"])

            def open_leg(token: str, call_id: str):
                page = browser.new_page()
                page.goto(f"{base}/call/page")
                page.fill("#token", token)
                page.fill("#callID", call_id)
                page.uncheck("#processing")
                page.click("#connect")
                page.wait_for_function("() => window.callPage.offerToConnectedMs !== null", timeout=30000)
                return page

            # -- setup time ------------------------------------------------------------------------
            a, b, call_id = new_call(0)
            page = open_leg(a, call_id)
            times = [page.evaluate("window.callPage.offerToConnectedMs")]
            answers = [page.evaluate("window.callPage.offerToAnswerMs")]
            for _ in range(args.rounds - 1):
                page.evaluate("teardown('bench round')")  # pc.close(): the host closes the leg (DTLS close)
                wait_for(lambda: call("GET", f"/call/status?callID={call_id}", a)["call"]["WebRTC"] == "closed", 10,
                         "the leg to close")
                page.click("#connect")
                page.wait_for_function("() => window.callPage.offerToConnectedMs !== null", timeout=30000)
                times.append(page.evaluate("window.callPage.offerToConnectedMs"))
                answers.append(page.evaluate("window.callPage.offerToAnswerMs"))
            page.close()
            time.sleep(2)  # the closed page's leg goes away
            print(f"offer POST -> connected, {len(times)} offers: p50 {statistics.median(times):.0f} ms, "
                  f"first {times[0]:.0f} ms, min {min(times):.0f} ms, max {max(times):.0f} ms; of which offer POST -> "
                  f"answer (API -> SQS -> host -> reply) p50 {statistics.median(answers):.0f} ms")

            # -- CPU and memory per active call -----------------------------------------------------
            def sample(seconds: float) -> tuple[float, float]:
                before, t0 = cpu_seconds(host), time.monotonic()
                time.sleep(seconds)
                return 100 * (cpu_seconds(host) - before) / (time.monotonic() - t0), rss_mib(host)

            idle_cpu, idle_rss = sample(args.window / 2)
            pages = []
            for i in range(1, args.calls + 1):
                a, b, call_id = new_call(i)
                pages += [open_leg(a, call_id), open_leg(b, call_id)]
            time.sleep(3)
            busy_cpu, busy_rss = sample(args.window)
            n = args.calls
            print(f"host idle: {idle_cpu:.1f} % CPU, {idle_rss:.1f} MiB RSS (after one call's set-up)")
            print(f"host with {n} bridged calls ({2 * n} WebRTC legs): {busy_cpu:.1f} % CPU, {busy_rss:.1f} MiB RSS")
            print(f"per active call (2 legs): {(busy_cpu - idle_cpu) / n:.1f} % of one core, "
                  f"{(busy_rss - idle_rss) / n:.1f} MiB")
            browser.close()
    finally:
        gateway.__exit__()
    return 0


if __name__ == "__main__":
    sys.exit(main())
