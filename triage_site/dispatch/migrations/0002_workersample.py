from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("dispatch", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="WorkerSample",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("worker_name", models.CharField(max_length=100)),
                ("recorded_at", models.DateTimeField(db_index=True)),
                ("tokens_per_second", models.FloatField(default=0.0)),
                ("active_requests", models.PositiveIntegerField(default=0)),
                ("queued_requests", models.PositiveIntegerField(default=0)),
            ],
            options={"ordering": ["recorded_at", "id"]},
        ),
    ]
