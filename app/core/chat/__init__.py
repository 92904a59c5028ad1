"""The chat: what a message asks for (``intent``), the prompt and the stored turns
(``service``: ChatService), standing rules (``rules``), and markdown → HTML (``render``)."""
