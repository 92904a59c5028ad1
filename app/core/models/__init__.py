"""Model files: reading GGUF headers, locating the embedded starter model."""
