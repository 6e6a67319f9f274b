# SPDX-License-Identifier: BSD-3-Clause
from rhc.cli.main import main

if __name__ == "__main__":
    main()
