"""How things look in a notebook: the one place surfaces turn values into display data.

Magics, widgets, batch reprs and reports all render through here, so every surface
shows a notice, a table or a model's reply the same way. It sits below both
``notebook`` and ``widgets`` and imports neither.
"""
