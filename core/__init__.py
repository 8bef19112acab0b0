"""Gapscope core: data, diagnosis, training and metrics. Never imports streamlit."""
