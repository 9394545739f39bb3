"""``python -m fastkernel``: run the kernel, or ``python -m fastkernel install``."""

from fastkernel.app import main

if __name__ == "__main__":
    main()
