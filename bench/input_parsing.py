"""Cost of the input checks added for issue 14, against the bare standard-library call in the same run.

  body      decode_json (strict numbers, nesting bound) vs json.loads, on a /send/text body with a
            reply and on a 1 MiB body with a data URL
  base64    decode_base64 (whitespace and URL-safe tolerant, precise errors) vs
            base64.b64decode(validate=True), on one line and on 76-character lines (what encodebytes
            writes; the bare call refuses those, so it is given the unwrapped text)
  url       parse_http_url vs urllib.parse.urlsplit
  fingerprint  Send.fingerprint (the send's Id idempotency key check) vs decode_json of the same body,
            which every request already pays, on the /send/text reply body and the 1 MiB data-URL body
Prints the median in microseconds per call and the ratio to the baseline's median.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.core.media import decode_base64  # noqa: E402
from chalicelib.core.urls import parse_http_url  # noqa: E402
from chalicelib.routes.send import SendImageRequest, SendTextRequest  # noqa: E402
from chalicelib.validation import decode_json  # noqa: E402


def median_us(fn, rounds: int) -> float:
    fn()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    reply = json.dumps({"Phone": "15550002222", "Body": "hello", "Id": "3EB0ABC", "ContextInfo": {
        "StanzaID": "3EB0X", "Participant": "15550001111@s.whatsapp.net",
        "QuotedMessage": {"extendedTextMessage": {"text": "hi", "contextInfo": {"mentionedJID": ["1@s"]}}}}})
    media = os.urandom(768 << 10)
    data_url_body = json.dumps({"Phone": "15550002222", "Image": "data:image/png;base64," + base64.b64encode(media)
                                .decode(), "Caption": "c"})
    one_line = base64.b64encode(media).decode()
    wrapped = base64.encodebytes(media).decode()
    url = "https://hooks.example.com:8443/path/to/hook?x=1&y=2"
    cases = [
        (f"body: reply ({len(reply)} B)", lambda: json.loads(reply), lambda: decode_json(reply, 1 << 20)),
        (f"body: data URL ({len(data_url_body) >> 10} KiB)", lambda: json.loads(data_url_body),
         lambda: decode_json(data_url_body, 2 << 20)),
        ("base64: one line (768 KiB)", lambda: base64.b64decode(one_line, validate=True),
         lambda: decode_base64(one_line, "Image")),
        ("base64: 76-char lines", lambda: base64.b64decode(one_line, validate=True),
         lambda: decode_base64(wrapped, "Image")),
        ("url", lambda: urlsplit(url).port, lambda: parse_http_url(url)),
    ]
    text_request = SendTextRequest.model_validate(json.loads(reply))
    image_request = SendImageRequest.model_validate(json.loads(data_url_body))
    cases += [
        ("fingerprint: reply", lambda: decode_json(reply, 1 << 20), lambda: text_request.fingerprint("/send/text")),
        (f"fingerprint: data URL ({len(data_url_body) >> 10} KiB)", lambda: decode_json(data_url_body, 2 << 20),
         lambda: image_request.fingerprint("/send/image")),
    ]
    print(f"{'case':38} {'baseline µs':>12} {'ours µs':>10} {'ratio':>7}")
    for name, baseline, ours in cases:
        rounds = args.rounds if "KiB" not in name and "lines" not in name else max(20, args.rounds // 10)
        base_us, ours_us = median_us(baseline, rounds), median_us(ours, rounds)
        print(f"{name:38} {base_us:12.1f} {ours_us:10.1f} {ours_us / base_us:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
