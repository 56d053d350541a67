"""Home: what the lab is, and a link to every page."""

import streamlit as st

from cnnlab.ui.navigation import ensure_app_navigation

ensure_app_navigation()  # a deep link on a fresh server: run through app.py

st.title("cnnlab")
st.markdown(
    "A lab for **seeing** how convolutional networks work: every number on these pages "
    "is computed (and checked against Keras), every network is a real Keras model, and "
    "training happens live in front of you."
)

SECTIONS = [
    ("pages/architectures.py", "Architectures", ":material/account_tree:",
     "LeNet-5 → AlexNet → GoogLeNet → ResNet: what each invented, with live numbers; "
     "CNN vs dense net, max pooling vs strided convolution, Local Response Normalization."),
    ("pages/calculator.py", "Calculator", ":material/calculate:",
     "Parameters, output shapes, FLOPs and memory of any conv stack, exact to Keras, "
     "and what-ifs to make it fit in GPU memory."),
    ("pages/train.py", "Train", ":material/show_chart:",
     "Train a CNN on MNIST live: loss and accuracy stream in while Keras trains; then look "
     "at its filters, activations and mistakes."),
    ("pages/classify.py", "Classify", ":material/image_search:",
     "Upload photos; Inception v3 names what is in them (ImageNet top-5) and Grad-CAM "
     "shows where it looked."),
    ("pages/transfer.py", "Transfer", ":material/model_training:",
     "Fine-tune Inception v3 on your own classes from a zip of folders."),
]

columns = st.columns(len(SECTIONS))
for column, (path, title, icon, blurb) in zip(columns, SECTIONS, strict=True):
    with column, st.container(border=True):
        st.page_link(path, label=title, icon=icon)
        st.caption(blurb)

st.markdown(
    "**For a lecture:** run `python -m cnnlab fetch` once while online to cache the "
    "Inception v3 weights and the datasets; the lab then works without a network."
)
