"""`lcm-run serve`: ComfyUI's HTTP + WebSocket API over the headless engine.

`app` builds the aiohttp application, `api` holds the prompt/queue/history/node-info
routes, `files` the `/view` and `/upload` routes, `userdata` what the editor stores,
`frontend` serves ComfyUI's official editor when it is installed, `queue` runs prompts
on one worker thread, and `hub` fans events out to WebSocket clients.
"""
