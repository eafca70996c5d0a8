"""`imcm-build simulate`: serve a records JSONL as a local Douban book site until Ctrl-C.

The first line on stdout is the base URL (e.g. http://127.0.0.1:8123); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import threading

from imcm_build.simulator.faults import FaultSpec
from imcm_build.simulator.render import ERA_CHOICES
from imcm_build.simulator.server import DoubanSimulator, load_simulator_records


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `simulate` subcommand to the imcm-build argument parser."""
    parser = subparsers.add_parser(
        "simulate",
        help="serve records as a local Douban book site on 127.0.0.1 (tag listings, subject pages, faults)",
    )
    parser.add_argument("--records", required=True, metavar="FILE", help="records JSONL (.gz allowed)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--faults", default=None, metavar="SPEC",
                        help="comma-separated faults, e.g. 429_every=7,500_every=11,403_after=500")
    parser.add_argument("--era", choices=ERA_CHOICES, default="mixed",
                        help="page layout: 2021 (visible tag block), 2024 (tags only in criteria), or mixed by id")
    parser.add_argument("--seed", type=int, default=0, help="seed of the page-size padding")
    parser.add_argument("--require-cookie", metavar="BID", default=None,
                        help="answer 403 to requests without the cookie bid=BID")
    parser.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Run the simulator until Ctrl-C (or until `stop` is set); return the exit status."""
    faults = FaultSpec.parse(args.faults) if args.faults else None
    records = load_simulator_records(args.records)
    simulator = DoubanSimulator(records, faults=faults, era=args.era, port=args.port, seed=args.seed,
                                require_cookie=args.require_cookie)
    stop = stop or threading.Event()
    with simulator:
        print(simulator.base_url, flush=True)
        print(f"Douban simulator: {len(records)} records, era {args.era}, faults: {faults or 'none'}; "
              "Ctrl-C stops it", file=sys.stderr, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print(f"Douban simulator stopped after {simulator.request_count} requests", file=sys.stderr, flush=True)
    return 0
