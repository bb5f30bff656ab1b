"""Writes the train / validation / test split RecBole 1.2.1 makes of the
Last.FM data that ``../shared/peers/recbole_kg.py`` prepared, as
``user<TAB>item<TAB>part`` lines of the original ids, for
``pyg-recsys train --split-file`` (ours trained on RecBole's own split).

Run with RecBole's interpreter, after the peer script wrote its atomic
files into WORK_DIR, with the seed the peer ran with (RecBole's default
2020 unless ``--seed=N`` was passed to it):

    /tmp/recbole-venv/bin/python benchmarks/_recbole_split.py WORK_DIR SEED OUT
"""
import os
import sys


def main() -> None:
    work, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sys.argv = sys.argv[:1]  # RecBole's Config reads the command line
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed
    # the peer's data set and split options (recbole_kg.py)
    cfg = Config(model='KGCN', dataset='lastfmkg', config_dict=dict(
        data_path=work, seed=seed, train_batch_size=4096,
        eval_batch_size=4096,
        load_col={'inter': ['user_id', 'item_id'],
                  'kg': ['head_id', 'relation_id', 'tail_id'],
                  'link': ['item_id', 'entity_id']},
        eval_args={'split': {'RS': [0.8, 0.1, 0.1]}, 'order': 'RO',
                   'group_by': 'user', 'mode': 'full'},
        device='cpu', use_gpu=False, show_progress=False,
        save_dataset=False, save_dataloaders=False, log_wandb=False,
        checkpoint_dir=os.path.join(work, 'ckpt')))
    init_seed(cfg['seed'], cfg['reproducibility'])
    ds = create_dataset(cfg)
    parts = data_preparation(cfg, ds)
    tmp = out + '.tmp'
    with open(tmp, 'w') as f:
        f.write('user\titem\tpart\n')
        for name, loader in zip(('train', 'val', 'test'), parts):
            inter = loader._dataset.inter_feat
            users = ds.id2token('user_id', inter['user_id'].numpy())
            items = ds.id2token('item_id', inter['item_id'].numpy())
            f.writelines(f'{u}\t{i}\t{name}\n' for u, i in zip(users, items))
    os.replace(tmp, out)


if __name__ == '__main__':
    main()
