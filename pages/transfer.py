"""Transfer page (being built)."""

import streamlit as st

st.title("Transfer")
st.info("This page is being built.")
