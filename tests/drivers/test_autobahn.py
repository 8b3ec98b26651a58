"""The Autobahn WebSocket test suite as an external judge, run by kosoku as a fuzzing client.

Cases 1 to 7, 9 and 10 (framing, pings, reserved bits, opcodes, fragmentation, UTF-8, closing,
limits and performance) run in full on both drivers. Of 12 and 13 (permessage-deflate), the
12.1 and 13.1 groups run here; the full groups take about five minutes a driver, so they are run
by hand (see the README's WebSocket section).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.1.*", "13.1.*"]


async def echo(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send(
            {"type": "websocket.send", "bytes": message.get("bytes"), "text": message.get("text")}
        )


@pytest.mark.timeout(300)  # about 25 s each on an idle 2-core machine; kosoku's own limit
def test_autobahn_cases_pass(serve: Any, tmp_path: Path) -> None:
    kosoku = Path(sys.executable).with_name("kosoku")
    includes = [arg for case in CASES for arg in ("-i", case)]
    with serve(echo, ws_ping_interval=0) as server:
        result = subprocess.run(
            [str(kosoku), f"127.0.0.1:{server.port}", *includes, "-p", "4", "-o", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    (results,) = json.loads((tmp_path / "index.json").read_text()).values()
    failed = {
        case: (outcome["behavior"], outcome["behaviorClose"])
        for case, outcome in results.items()
        if "FAILED" in (outcome["behavior"], outcome["behaviorClose"])
    }
    assert len(results) >= 330
    assert failed == {}
