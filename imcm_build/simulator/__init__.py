"""The local Douban simulator: its own page templates, fault injection and an HTTP server on 127.0.0.1.

It never imports the crawler's parser, so a crawl → parse round trip really tests the parser.
"""

from imcm_build.simulator.faults import Fault, FaultSpec
from imcm_build.simulator.server import DoubanSimulator, load_simulator_records

__all__ = ["DoubanSimulator", "Fault", "FaultSpec", "load_simulator_records"]
