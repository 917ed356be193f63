"""``python -m argen.decompress file.argen -o folder/``: see :mod:`argen.compression`."""
from .compression import decompress_main

if __name__ == "__main__":
    decompress_main()
