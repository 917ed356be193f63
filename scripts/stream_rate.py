"""How fast the app streams a generation (figures, not assertions).

    python scripts/stream_rate.py [--model mlp-v3] [--speed 14]

Starts the app on a free local port, runs one Generate through its API and prints three rates in
frames per second: the handler alone (in this process), the server as it yields frames, and a
client as it receives them (without downloading each frame's pictures, as a browser does not wait
for them either). The app paces frames at ``app.FPS``.
"""
import argparse
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import app  # noqa: E402 (the app module, at the repo root)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mlp-v3")
    parser.add_argument("--speed", type=int, default=14, help="pixels per frame (0: auto)")
    args = parser.parse_args(argv)
    settings = (args.model, 7, 1.0, 0, 0, False, 1, args.speed, 1.0)

    started = time.monotonic()
    frames = sum(1 for _ in app.generate(*settings))
    print(f"handler alone: {frames / (time.monotonic() - started):.1f} frames/s ({frames} frames)")

    stamps, stream = [], app.stream
    app.stream = lambda *a, **k: ((stamps.append(time.monotonic()), out)[1] for out in stream(*a, **k))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    from gradio_client import Client

    client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
    started = time.monotonic()
    received = sum(1 for _ in client.submit(*settings, api_name="/generate"))
    seconds = time.monotonic() - started
    print(f"server yields: {(len(stamps) - 1) / (stamps[-1] - stamps[0]):.1f} frames/s")
    print(f"client receives: {received / seconds:.1f} frames/s ({received} frames in {seconds:.2f} s)")
    app.demo.close()


if __name__ == "__main__":
    main()
