"""A stand-in for ``vllm serve`` at the process boundary: parses the same argv, serves /health.

Behaviour is chosen by FAKE_VLLM_MODE: "ok" (healthy after FAKE_VLLM_DELAY s), "crash"
(exits 3 after logging), "stall" (logs once, never healthy), "leak" (prints the HF token),
"child" (also starts a worker process that outlives it, as vLLM's engine processes can),
"echo" (logs its arguments and secret-looking environment the way vLLM logs its
arguments, then exits 1 as a crash would).
"""

import argparse
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-num-seqs", type=int, required=True)
    argv = sys.argv[1:]
    # As `vllm serve MODEL ...` (the CLI) or `--model MODEL ...` (python -m the API server).
    model_tag = argv[1] if len(argv) > 1 and argv[0] == "serve" else None
    args, _ = parser.parse_known_args(argv[2:] if model_tag else argv)
    args.model = args.model or model_tag
    if not args.model:
        parser.error("a model is required (vllm serve MODEL, or --model MODEL)")
    mode = os.environ.get("FAKE_VLLM_MODE", "ok")
    print(f"INFO starting fake vllm for {args.model} max_num_seqs={args.max_num_seqs}", flush=True)
    if mode == "leak":
        print(f"DEBUG token is {os.environ.get('HF_TOKEN')}", flush=True)
    if mode == "child":
        import subprocess

        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"INFO worker pid {worker.pid}", flush=True)
    if mode == "echo":
        flags = dict(zip(sys.argv[1::2], sys.argv[2::2], strict=False))
        print(f"INFO non-default args: {flags!r}", flush=True)
        print(f"DEBUG argv {' '.join(sys.argv)}", flush=True)
        for name, value in sorted(os.environ.items()):
            if name.startswith(("MY_", "HF_", "OPENAI_")):
                print(f"DEBUG env {name}: {value}", flush=True)
        for line in os.environ.get("FAKE_VLLM_LINES", "").split("|"):
            print(line, flush=True)
        print("ERROR RuntimeError: engine core died", flush=True)
        sys.exit(1)
    if mode == "crash":
        print("ERROR CUDA out of memory", flush=True)
        sys.exit(3)
    if mode == "stall":
        time.sleep(3600)
    time.sleep(float(os.environ.get("FAKE_VLLM_DELAY", "0.5")))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = 200 if self.path == "/health" else 404
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    print("INFO Application startup complete.", flush=True)
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
