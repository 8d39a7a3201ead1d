"""A minimal Django project of async views, served through Django's own ASGI handler; no database."""

SECRET_KEY = "rustgun-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djasync.urls"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True
TEMPLATES = []
