"""Platform descriptions (TOML) shipped with sparsenest; loaded by `sparsenest.analysis.cost.load_platform`."""
from pathlib import Path

#: Folder holding the shipped platform files (`<name>.toml`).
PLATFORM_DIR = Path(__file__).parent
DEFAULT_PLATFORM = "msp430fr5994"
