"""The bundled default model (``data/models/default``), stage by stage; its card
(``data/models/default/README.md``) lists the commands in order."""
