"""The commands over a trained run folder: ``recommend`` (a user or a
new session, in raw ids), ``export`` (the embedding tables) and ``serve``
(JSON over HTTP), thin over :mod:`pyg_recsys.cli.runs`,
:mod:`pyg_recsys.cli.export` and :mod:`pyg_recsys.cli.http`."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from pyg_recsys.cli.run import USER_ERRORS, load_dataset
from pyg_recsys.cli.table import NEXT_ITEM
from pyg_recsys.cli.tasks import UserError
from pyg_recsys.schema import ITEM, USER

log = logging.getLogger(__name__)


def load_run_parts(run: Path, device: str = 'cpu') -> tuple[Any, ...]:
    """``(args, split, model)`` of a finished run folder, for scripts
    that want the parts (:func:`pyg_recsys.cli.runs.load_run` returns
    the whole :class:`~pyg_recsys.cli.runs.LoadedRun`)."""
    from pyg_recsys.cli.runs import load_run as load
    loaded = load(run, device)
    return loaded.args, loaded.split, loaded.model


def cmd_recommend(args: argparse.Namespace) -> int:
    from pyg_recsys.cli.runs import load_run as load
    run = load(args.run, args.device, args.root, args.raw_dir)
    if args.session is not None:
        session = args.session.replace(',', ' ').split()
        if not session:
            raise UserError('--session needs at least one item id')
        recs = run.recommend(session=session, k=args.k)
        who = f'the session {" ".join(session)}'
        excluded = 'its own items excluded'
    else:
        recs = run.recommend(user=args.user, k=args.k)
        who = f'user {args.user}'
        if run.task == NEXT_ITEM:
            excluded = 'the items of their history excluded'
        else:
            u = run.index_of(USER, args.user)
            excluded = (f'{int(run.known_items().degree()[u])} known items '
                        f'excluded')
    titles = None
    if run.task != NEXT_ITEM:
        try:  # titles, where the data set has them and is at hand
            ds = load_dataset(run.args.dataset, run.args.root,
                              run.args.raw_dir)
            titles = getattr(ds, 'item_titles', None)
        except USER_ERRORS as e:
            log.info('no item titles: %s', e)
    print(f'top {args.k} for {who} ({run.args.model} on '
          f'{run.args.dataset}, {excluded}):')
    for rank, (item, score) in enumerate(recs, 1):
        title = ''
        if titles is not None:
            title = f'  {titles[run.index_of(ITEM, item)]}'
        print(f'{rank:>3}. item {item}{title}  (score {score:.3f})')
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pyg_recsys.cli.export import export_run
    from pyg_recsys.cli.runs import load_run as load
    run = load(args.run, 'cpu', args.root, args.raw_dir)
    manifest = export_run(run, args.out, args.format)
    tables = ', '.join(f'{k} ({v["rows"]} x {manifest["dim"]})'
                       for k, v in manifest['tables'].items())
    print(f'wrote {tables} as {manifest["format"]} to '
          f'{Path(args.out).resolve()} (manifest.json names the files)')
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from pyg_recsys.cli.http import make_server
    from pyg_recsys.cli.runs import load_run as load
    if not 0 <= args.port <= 65535:
        raise UserError(f'--port must be in [0, 65535], got {args.port}')
    if args.threads < 1:
        raise UserError(f'--threads must be >= 1, got {args.threads}')
    torch.set_num_threads(args.threads)
    run = load(args.run, args.device, args.root, args.raw_dir)
    try:
        server = make_server(run, args.host, args.port)
    except OSError as e:
        raise UserError(f'cannot listen on {args.host}:{args.port} '
                        f'({e.strerror or e}); choose another --port') \
            from None
    host, port = server.server_address[:2]
    print(f'serving {run.args.model} on {run.args.dataset} at '
          f'http://{host}:{port} (GET /recommend?user=ID&k=10, POST '
          f'/recommend, GET /health); Ctrl-C stops', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


COMMANDS = {'recommend': cmd_recommend, 'export': cmd_export,
            'serve': cmd_serve}

__all__ = ['COMMANDS', 'load_run_parts', 'cmd_recommend', 'cmd_export',
           'cmd_serve']
