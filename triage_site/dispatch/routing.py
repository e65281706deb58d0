from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/board/", consumers.DispatcherConsumer.as_asgi()),
    path("ws/requests/<int:pk>/", consumers.RequestConsumer.as_asgi()),
]
