-- connection status: the web chat is served by the server itself, so it is connected from the start
UPDATE connections SET status = 'connected' WHERE kind = 'webchat' AND status = 'disconnected';
