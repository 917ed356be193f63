"""Publishing shipped models to the Hugging Face Hub, laid out like ``weights/``:

    python -m argen.publish pixel-gpt bsq-gpt --repo-id user/argen-weights [--private] [--dry-run]

uploads ``<name>/config.json``, ``model.safetensors``, ``metrics.json`` and the sample grid of each
model (one commit), so that ``ARGEN_WEIGHTS=user/argen-weights python app.py`` serves them and
``argen.load(name)`` reads them (``huggingface_hub.snapshot_download`` fetches the repo once). The
upload is ``HfApi().upload_folder`` of a staged copy; ``--dry-run`` stages and lists, and sends nothing.
"""
import argparse
import shutil
import tempfile
from pathlib import Path

from .configs import CONFIG, WEIGHTS
from .hub import METRICS, SAMPLES, available, model_dir

FILES = (CONFIG, WEIGHTS, METRICS, SAMPLES, "loss.png")


def stage(names, folder):
    """Copy the models' files into ``folder`` as the Hub repo will hold them; returns their paths in the repo."""
    paths = []
    for name in names:
        source = model_dir(name)
        for file in FILES:
            if (source / file).is_file():
                (Path(folder) / name).mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / file, Path(folder) / name / file)
                paths.append(f"{name}/{file}")
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m argen.publish", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+", help=f"shipped models (of {available()})")
    parser.add_argument("--repo-id", required=True, help="the Hub model repo, user/name")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--dry-run", action="store_true", help="stage and list the files; upload nothing")
    args = parser.parse_args(argv)
    for name in args.names:
        model_dir(name)  # fail early on an unknown name
    with tempfile.TemporaryDirectory() as folder:
        paths = stage(args.names, folder)
        print("\n".join(f"{args.repo_id}/{path}" for path in paths))
        if args.dry_run:
            return
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(args.repo_id, repo_type="model", private=args.private, exist_ok=True)
        api.upload_folder(folder_path=folder, repo_id=args.repo_id, repo_type="model",
                          commit_message=f"argen: {', '.join(args.names)}")
        print(f"uploaded {len(paths)} files: ARGEN_WEIGHTS={args.repo_id} python app.py serves them")


if __name__ == "__main__":
    main()
