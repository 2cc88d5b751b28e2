<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Schema;

class CreatePanelNotesTable extends Migration
{
    public function up()
    {
        Schema::create('panel_notes', function (Blueprint $table) {
            $table->id();
            $table->string('body');
            $table->timestamps();
        });

        DB::table('panel_notes')->insert([
            'body' => 'Hello from the '.config('app.name').' database',
            'created_at' => now(),
            'updated_at' => now(),
        ]);
    }

    public function down()
    {
        Schema::dropIfExists('panel_notes');
    }
}
