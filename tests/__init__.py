"""cnnlab's tests. `ROOT` is the project folder and `APP` its Streamlit entry point."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
