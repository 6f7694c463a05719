"""The Zendesk agent sidebar: signed-URL auth, a short-lived page session, the panel, actions.

``routes(state)`` gives the Starlette routes; ``SidebarState`` holds what they share.
"""
