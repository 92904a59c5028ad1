"""Network control: the offline policy, the in-process guard, the audit log, the OS firewall."""
