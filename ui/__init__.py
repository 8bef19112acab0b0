"""Streamlit helpers shared by the pages: cached store access and the current dataset.

Only this package and ``pages/`` import streamlit; the computing happens in ``core``.
"""
