"""cnnlab entry point: navigation over the page files and the shared sidebar. Nothing else."""

from pathlib import Path

import streamlit as st

from cnnlab import __version__

# A local PNG: a Material-icon page_icon makes the browser fetch an icon font from the
# internet, and cnnlab must work with no network (issue 15).
ICON = Path(__file__).resolve().parent / "cnnlab" / "data" / "icon.png"
st.set_page_config(page_title="cnnlab", page_icon=str(ICON), layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/architectures.py", title="Architectures", icon=":material/account_tree:"),
    st.Page("pages/calculator.py", title="Calculator", icon=":material/calculate:"),
    st.Page("pages/train.py", title="Train", icon=":material/show_chart:"),
    st.Page("pages/classify.py", title="Classify", icon=":material/image_search:"),
    st.Page("pages/transfer.py", title="Transfer", icon=":material/model_training:"),
]

page = st.navigation(PAGES)
with st.sidebar:
    st.caption(f"cnnlab {__version__} · pages draw, cnnlab computes, tests prove it against Keras.")
page.run()
