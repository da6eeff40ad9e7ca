"""uvicorn's command line (the arguments) serving the inherited listening
socket itself: see AdoptInheritedSocket in fastapi-infra's
components/service/command.go, which embeds this file."""
import socket, uvicorn
# uvicorn --fd serves socket.fromfd's duplicate and keeps the original open.
socket.fromfd = lambda fd, *_: socket.socket(fileno=fd)
uvicorn.main()
