"""Architectures page (being built)."""

import streamlit as st

st.title("Architectures")
st.info("This page is being built.")
