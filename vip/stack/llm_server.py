"""Serve a GGUF chat model over llama.cpp's own OpenAI-compatible HTTP server (xllamacpp).

Run by the llm environment's interpreter (``venvs/llm``), not the project's: it imports only the
standard library and xllamacpp. `vip stack up llm` starts it; it serves until SIGTERM.

    python llm_server.py --model PATH.gguf --host 127.0.0.1 --port 8090
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="path of the GGUF file")
    parser.add_argument("--alias", default="", help="the model name the API reports")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx-size", type=int, default=4096)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import xllamacpp

    args = parse_args(argv)
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    if args.alias:
        params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx_size
    params.n_parallel = 1  # one slot: requests queue rather than split the two cores
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.n_threads = args.threads
        cpu.poll = 0  # sleep, not spin, between tokens: the cores are shared with the stack
    params.endpoint_metrics = False
    params.ui = False

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = xllamacpp.Server(params)  # loads the model, then listens in its own threads
    print(f"llm: serving {args.model} on {server.listening_address}", flush=True)
    stop.wait()
    del server  # joins llama.cpp's threads
    return 0


if __name__ == "__main__":
    sys.exit(main())
