"""The dashboard's tabs, one module each, in the order the page shows them: ``header`` (the cards above every
tab), ``market``, ``whales``, ``news``, ``sentiment``, ``chain``, ``providers``, ``connections``.

Each module holds its tab's sections as pure functions of the payloads (plus a :class:`ui.widgets.View`), and
``layout``, which places the tab's Gradio components; ``ui.dashboard`` assembles the page and refreshes them.
"""
