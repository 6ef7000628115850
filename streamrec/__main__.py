from streamrec.cli import app

app()
