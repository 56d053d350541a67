"""cnnlab entry point: navigation over the page files and the shared sidebar. Nothing else."""

from pathlib import Path

import streamlit as st

from cnnlab import __version__
from cnnlab.train import streaming, warmup
from cnnlab.ui import present, walkthrough
from cnnlab.ui.safe import plain

# A local PNG: a Material-icon page_icon makes the browser fetch an icon font from the
# internet, and cnnlab must work with no network (issue 15).
ICON = Path(__file__).resolve().parent / "cnnlab" / "data" / "icon.png"
# ?present=1 (or the sidebar toggle) switches presenter mode on for this session; the
# sidebar starts collapsed then (st.set_page_config may only be called here).
present_notice = present.follow_url()
st.set_page_config(page_title="cnnlab", page_icon=str(ICON), layout="wide",
                   initial_sidebar_state="collapsed" if present.on() else "auto")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/architectures.py", title="Architectures", icon=":material/account_tree:"),
    st.Page("pages/calculator.py", title="Calculator", icon=":material/calculate:"),
    st.Page("pages/train.py", title="Train", icon=":material/show_chart:"),
    st.Page("pages/classify.py", title="Classify", icon=":material/image_search:"),
    st.Page("pages/transfer.py", title="Transfer", icon=":material/model_training:"),
]

page = st.navigation(PAGES)
# Before TensorFlow is imported: a finished run's memory comes back to the system (issue 10).
streaming.returnable_memory_once()
# Once per server, in the background: TensorFlow and the seed's model get ready, so the
# first Train click does not wait for them (cnnlab/train/warmup.py; CNNLAB_WARMUP=0: off).
warmup.start()
with st.sidebar:
    present.sidebar_toggle()
    st.caption(f"cnnlab {__version__} · pages draw, cnnlab computes, tests prove it against Keras.")
    walkthrough.release_keys(keep=page.url_path)  # the step keys belong to the page that bound them
present.style()
if present_notice:
    st.warning(plain(present_notice), icon=":material/link_off:")
# `present=1` stays in the URL: a page switch drops the query string, and a page may rewrite
# it (the Calculator does), so it is put back before and after the page runs.
present.keep_in_url()
try:
    page.run()
finally:
    present.keep_in_url()
