"""Calls on the session host: the call tracker (registry + Call webhooks) and the WebRTC media legs."""
