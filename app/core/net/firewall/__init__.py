"""The OS firewall layer of offline mode: one backend per platform, driven by a privileged helper."""
