"""The local API: the loaded model served to the user's editor over loopback HTTP
(OpenAI-compatible chat, completions, fill-in-the-middle, embeddings). See ``server.py``."""
