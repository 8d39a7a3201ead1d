from django.urls import path

from . import views

urlpatterns = [
    path("hello/<int:n>/", views.hello),
    path("echo/", views.echo),
    path("stream/", views.stream),
]
