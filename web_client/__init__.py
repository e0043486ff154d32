"""web-client: the Streamlit app to sign in, search tweets, watch trends and the pipeline."""
