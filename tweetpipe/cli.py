"""The `tweetpipe` command: run the local stack and look into the search store.

A bad option value is one line on stderr and exit code 2 (argparse's convention); a store that
cannot answer is one line and exit code 1. Option values are checked by the same pydantic models
the code behind them uses, so the command line and the code cannot disagree on what is valid.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from tweetpipe.search import MAX_PAGE_SIZE, PageRequest, SearchQuery, StoreError, open_store
from tweetpipe.settings import SearchSettings, ServiceSettings, project_path

M = TypeVar("M", bound=BaseModel)


class SearchCommandSettings(ServiceSettings):
    """`tweetpipe search` reads the store the way the stack's services are told to."""

    application: ClassVar[str] = "tweetpipe"

    search: SearchSettings = SearchSettings()


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (it prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _validated(
    parser: argparse.ArgumentParser, model: type[M], options: dict[str, str], **values: Any
) -> M:
    """`model(**values)`, or a usage error naming the option (`options`: field → option)."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        message = str(first["msg"])
        if message.startswith("Input should be "):
            message = "must be " + message.removeprefix("Input should be ")
        message = message[:1].lower() + message[1:]
        got = repr(first["input"])
        got = got if len(got) <= 40 else got[:37] + "..."
        parser.error(f"argument {options.get(field, field)}: {message} (got {got})")


def up(args: argparse.Namespace) -> int:
    """Run the whole pipeline with the single-machine stand-ins, which only a development
    install has (the `local` extra); the production image does not."""
    try:
        from devstack.up import GeneratorRun, run_stack
    except ImportError as exc:
        print(f"tweetpipe up needs the single-machine stand-ins (devstack): {exc}", file=sys.stderr)
        return 1
    run = _validated(
        args.parser,
        GeneratorRun,
        {"rate": "--rate", "count": "--count", "seed": "--seed"},
        rate=args.rate,
        count=args.count,
        seed=args.seed,
    )
    return run_stack(rate=run.rate, count=run.count, seed=run.seed)


def search(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    query = _validated(
        parser,
        SearchQuery,
        {"text": "text", "user_id": "--user", "hashtag": "--hashtag"},
        text=args.text or None,
        user_id=args.user,
        hashtag=args.hashtag,
    )
    page = _validated(
        parser, PageRequest, {"size": "--size", "sort": "--sort"}, size=args.size, sort=args.sort
    )
    settings = SearchCommandSettings().search
    if settings.backend == "tantivy":
        path = project_path(settings.tantivy_path)
        if not (path / "meta.json").is_file():
            print(
                f"tweetpipe search: no index at {path}: `./dev up` builds one, or point "
                "SEARCH__TANTIVY_PATH at one",
                file=sys.stderr,
            )
            return 1
        settings = settings.model_copy(update={"tantivy_path": path})
    try:
        return _search(settings, args.action, query, page)
    except StoreError as exc:
        print(f"tweetpipe search: the store failed: {exc}", file=sys.stderr)
        return 1


def _search(settings: SearchSettings, action: str, query: SearchQuery, request: PageRequest) -> int:
    store = open_store(settings)
    try:
        if action == "count":
            print(store.count(query))
            return 0
        page = store.search(query, request)
        print(f"{page.total} matching tweets")
        for hit in page.hits:
            tweet = hit.tweet
            text = hit.highlights[0] if hit.highlights else tweet.text
            print(
                f"{tweet.created_at:%Y-%m-%d %H:%M:%S} user {tweet.user_id} [{tweet.lang}] {text}"
            )
        return 0
    finally:
        store.close()


def _version() -> str:
    try:
        return version("tweetpipe")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tweetpipe", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {_version()}",
        help="print the version and exit",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do"
    )

    run = commands.add_parser(
        "up",
        help="run the whole pipeline on this machine (Ctrl-C stops it)",
        description="Run the broker, the stand-ins and every service on this machine; ports "
        "come from PORTS__<NAME> (e.g. PORTS__GATEWAY=8080) and are checked before anything "
        "starts.",
    )
    run.add_argument(
        "--rate",
        type=float,
        default=20.0,
        metavar="PER_S",
        help="tweets per second to generate (0 = as fast as possible; default 20)",
    )
    run.add_argument(
        "--count",
        type=int,
        default=None,
        metavar="N",
        help="stop generating after N tweets (N >= 1; default: until Ctrl-C)",
    )
    run.add_argument(
        "--seed", type=int, default=None, help="random seed for reproducible users, texts and order"
    )
    run.set_defaults(handler=up, parser=run)

    find = commands.add_parser(
        "search",
        help="count or search the indexed tweets",
        description="Count or search the tweets the local pipeline indexed (the project's "
        "index wherever this runs; SEARCH__TANTIVY_PATH or SEARCH__BACKEND=elasticsearch "
        "to read another).",
    )
    find.add_argument(
        "action",
        choices=["count", "query"],
        help="count: how many tweets match; query: show the best matches",
    )
    find.add_argument("text", nargs="?", default="", help="words to match (default: every tweet)")
    find.add_argument(
        "--user", type=int, default=None, metavar="ID", help="only tweets by this user id"
    )
    find.add_argument(
        "--hashtag", default=None, metavar="TAG", help="only tweets with this hashtag (without #)"
    )
    find.add_argument(
        "--size",
        type=int,
        default=10,
        metavar="N",
        help=f"how many tweets `query` shows (1-{MAX_PAGE_SIZE}; default 10)",
    )
    find.add_argument(
        "--sort",
        choices=["relevance", "newest", "oldest"],
        default="relevance",
        help="order of `query`'s tweets (default relevance)",
    )
    find.set_defaults(handler=search, parser=find)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
