"""`python -m sotag.monitoring.observe` (`make observe`): render prometheus.yml with the settings' ports into
<home>/observe/ (observe.dir) and run Prometheus on 127.0.0.1:observe.port, scraping the gateway at gateway.port,
its data in <home>/observe/data. `--print-config` prints the configuration instead."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from sotag.infra.argtypes import setting, settings_flags
from sotag.monitoring.observe import RULES
from sotag.monitoring.observe.prometheus import Scrape, command, render
from sotag.settings import load_settings
from sotag.tagger.errors import SotagError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sotag.monitoring.observe", description=__doc__)
    setting(parser, "--port", "observe.port", "Prometheus' port on 127.0.0.1", type=int)
    setting(parser, "--gateway-port", "gateway.port", "the gateway's port, scraped", type=int)
    setting(parser, "--scrape-interval", "observe.scrape_interval_s", "seconds between scrapes", type=float)
    parser.add_argument("--print-config", action="store_true", help="print the configuration; start nothing")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(settings_flags(args)).settings
    except SotagError as exc:
        print(f"observe: {exc}", file=sys.stderr)
        return 2
    text = render(Scrape.from_settings(settings, RULES))
    if args.print_config:
        print(text, end="")
        return 0
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        print(
            "observe: prometheus is not installed (Debian: apt-get install prometheus; make system-deps)",
            file=sys.stderr,
        )
        return 2
    folder = settings.observe_dir
    (folder / "data").mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(text)
    line = command(prometheus, config, folder / "data", settings.observe.port)
    print(
        f"observe: Prometheus on http://127.0.0.1:{settings.observe.port} scraping the gateway per {config}", flush=True
    )
    os.execv(line[0], line)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
