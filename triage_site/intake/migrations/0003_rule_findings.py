from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("intake", "0002_urgencyoverride"),
    ]

    operations = [
        migrations.AddField(
            model_name="medicalrequest",
            name="rule_findings",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
