"""Review (consilium): the roles, their checklists and the run (``roles``), and the optional
remote director (``director``)."""
