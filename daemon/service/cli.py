"""The `argusd` command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from daemon import __version__
from daemon.client import events_cli, status_cli
from daemon.config.loading import json_logs_requested, load_config
from daemon.config.models import EXIT_CONFIG, ConfigError
from daemon.core.memory import limit_arenas
from daemon.core.redact import redact_url

log = logging.getLogger("argusd")

COMPLETION_SHELLS = ("bash", "zsh")
FILE_ARGUMENTS = {"config", "model"}  # argument destinations that name a file


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="argusd", description="Streaming video analytics daemon.")
    parser.add_argument("--version", action="version", version=f"argusd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", "-c", required=True, help="YAML configuration file")
    run.add_argument("--exit-when-done", action="store_true",
                     help="exit once every camera has finished (file sources without loop)")
    run.add_argument("--max-seconds", type=float, default=None, help="stop after this many seconds")

    check = commands.add_parser(
        "check-config", help="check a configuration file as start-up would (the file, plugins, models) and exit")
    check.add_argument("config", help="YAML configuration file")
    check.add_argument("--offline", action="store_true",
                       help="check the file and that its plugins are installed, without looking for or loading "
                            "model files (for CI, where the models are not present)")

    commands.add_parser("config-reference", help="print the configuration reference (markdown)")
    commands.add_parser("hash-password", help="read a password on stdin and print it hashed for "
                        "http.auth.password_hash")

    export = commands.add_parser("export", help="convert a .pt model to ONNX or OpenVINO (offline)")
    export.add_argument("model", help="the .pt file")
    export.add_argument("--format", choices=["onnx", "openvino"], default="openvino",
                        help="openvino is the fastest on Intel/AMD CPUs; onnx runs anywhere (default: openvino)")
    export.add_argument("--imgsz", type=int, default=640, help="largest input side (default 640)")
    export.add_argument("--half", action="store_true", help="FP16 weights")
    events_cli.add_parser(commands)
    status_cli.add_parser(commands)
    completion = commands.add_parser("completion", help="print a shell completion script",
                                     description="Print a completion script for SHELL. bash: "
                                     "`argusd completion bash > /etc/bash_completion.d/argusd`; zsh: "
                                     "`argusd completion zsh > \"${fpath[1]}/_argusd\"`.")
    completion.add_argument("shell", choices=COMPLETION_SHELLS)
    return parser


def _completion(shell: str) -> int:
    import shtab

    parser = _parser()
    parsers = [parser, *(choice for action in parser._actions  # noqa: SLF001 (argparse has no public walk)
                         if isinstance(action, argparse._SubParsersAction)  # noqa: SLF001
                         for choice in action.choices.values())]
    for action in (action for each in parsers for action in each._actions):  # noqa: SLF001
        if action.dest in FILE_ARGUMENTS:  # complete as file names, not as free words
            vars(action)["complete"] = shtab.FILE  # shtab's own attribute, unknown to argparse's types
    print(shtab.complete(parser, shell), end="")
    return 0


def _check_config(path: str, offline: bool) -> int:
    try:
        config = load_config(path)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    from daemon.service.logs import setup_logging
    from daemon.service.preflight import startup_problems

    setup_logging("warning")  # plugins log while loading; only what goes wrong matters here
    problems = startup_problems(config, offline)
    if problems:
        print("\n".join([f"{path}: {len(problems)} error(s) at start-up", *(f"  {p}" for p in problems)]),
              file=sys.stderr)
        return EXIT_CONFIG
    checked = "plugins installed, models not loaded (--offline)" if offline else "models loaded"
    print(f"{path}: OK ({len(config.cameras)} camera(s), detector {redact_url(config.detector.model)}; {checked})")
    return 0


def _run(args: argparse.Namespace) -> int:
    from daemon.service.logs import setup_logging

    try:
        config = load_config(args.config)
    except ConfigError as error:
        setup_logging(json_lines=json_logs_requested(args.config))
        log.error("%s", error)
        return EXIT_CONFIG
    setup_logging(config.log.level, config.log.json_lines)
    limit_arenas()  # before any camera or GStreamer thread exists

    from daemon.service.daemon import Daemon
    from daemon.service.notify import SystemdNotifier
    from daemon.service.progress import OfflineProgress
    from plugins.interfaces import PluginError

    notifier = SystemdNotifier.from_environment()
    daemon = Daemon(config, args.config, notifier)
    # Before start(): reading the files' lengths takes a moment that would otherwise count as analysis time.
    progress = OfflineProgress(config.cameras, daemon.camera_status) if args.exit_when_done else None
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # The handler only queues the signal: no lock may be taken inside a handler (cpython#126434).
        signal.signal(signum, lambda number, _frame: daemon.signals.put_nowait(number))
    try:
        daemon.start()
    except (PluginError, OSError, ConfigError) as error:  # bad model path or device, HTTP address taken, ...
        log.error("cannot start: %s", error)
        daemon.shutdown()
        return EXIT_CONFIG
    notifier.ready(daemon.status_line())
    try:
        daemon.wait(exit_when_done=args.exit_when_done, max_seconds=args.max_seconds,
                    on_turn=progress.update if progress and progress.active else None)
    finally:  # whatever ends the main loop, queued events are published or spooled
        notifier.stopping()
        daemon.shutdown()
        notifier.close()
    if progress is not None and progress.active:  # after shutdown: the last frames are analysed by then
        print(progress.finish(daemon.events_by_type), flush=True)
    return 0


def _export(args: argparse.Namespace) -> int:
    from daemon.service.logs import setup_logging

    setup_logging()
    from plugins.detectors.ultralytics_detector import export_model
    from plugins.interfaces import PluginError

    try:
        output = export_model(args.model, args.format, args.imgsz, args.half)
    except PluginError as error:
        log.error("%s", error)
        return EXIT_CONFIG
    print(output)
    return 0


def _hash_password() -> int:
    import getpass

    from daemon.service.auth import hash_password

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("hash-password: no password given on stdin", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.config, args.offline)
    if args.command == "export":
        return _export(args)
    if args.command == "config-reference":
        from daemon.config.reference import render

        print(render(), end="")
        return 0
    if args.command == "hash-password":
        return _hash_password()
    if args.command == "events":
        return events_cli.run(args)
    if args.command == "status":
        return status_cli.run(args)
    if args.command == "completion":
        return _completion(args.shell)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
