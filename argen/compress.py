"""``python -m argen.compress MODEL picture.png ... -o file.argen``: see :mod:`argen.compression`."""
from .compression import compress_main

if __name__ == "__main__":
    compress_main()
